"""Evaluation: a bot's test cases, and runs that answer them and measure the answers."""
