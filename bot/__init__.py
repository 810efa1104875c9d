"""voicebot core: speech providers, durable jobs, rendering; never imports a chat library."""
