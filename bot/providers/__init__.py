"""Speech providers behind the SpeechToText / TextToSpeech roles; registry.py builds them."""
