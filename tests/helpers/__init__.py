"""Test harness: real RTSP servers, readers and audio analysis for end-to-end tests."""
