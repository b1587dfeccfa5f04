"""Reinforcement learning with verifiable rewards (GRPO): components used by recipes/grpo.py."""
