"""Encoders: the `Encoder` protocol and what all share (`base`), the tiers by name (`registry`), and the tiers."""
