"""Render: arrangement of the parts and their MIDI/audio output."""
