"""The melody language model: tokenizer, corpus, transformer, decoding, training."""
