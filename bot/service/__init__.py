"""What adapters call: VoiceService (voice.py), a façade over intake, text jobs, chat admin and a
chat's jobs, with the access lists and limits they check (limits.py)."""
