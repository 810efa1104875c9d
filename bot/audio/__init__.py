"""Audio: probe, decode and encode with PyAV, headers, the audio thread pool, silence splitting."""
