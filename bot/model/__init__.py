"""The shared vocabulary (job record, speech results, errors): imports nothing of ours but text."""
