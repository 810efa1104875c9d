"""Discord adapter: voice messages and the "Transcribe" menu in, transcripts and voices out."""
