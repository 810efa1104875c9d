"""Speech providers: NanoGPT and cantonese.ai behind the SpeechToText / TextToSpeech roles."""
