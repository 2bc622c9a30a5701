"""Event contracts on Kafka: the codec (CloudEvents binary mode) and domain conversions."""
