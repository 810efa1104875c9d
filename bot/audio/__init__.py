"""Audio: probe, decode, encode and voice clips with PyAV, headers, its thread pool, splitting."""
