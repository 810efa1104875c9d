"""What a reply says: replies, rendering (plain, .txt, .srt), status lines, chat settings."""
