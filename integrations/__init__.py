"""Adapters that put rlef behind the RL stacks people already run (TRL, veRL, SkyRL,
tinker-cookbook) and scoring of completions made anywhere.

Layering: everything here imports only `service.client` and `service.schema` from rlef.
"""
