"""Benchmarks that print measured figures of the integration."""
