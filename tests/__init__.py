"""Tests for the RTSP Announcer integration."""
