"""Tests of the audio core that run without Home Assistant."""
