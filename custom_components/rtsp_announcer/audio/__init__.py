"""The audio core: clock, PCM transports, the ffmpeg publisher and playback.

Nothing in this package imports Home Assistant, so it can be used and tested alone.
"""
