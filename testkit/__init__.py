"""Test support shared by tests/ and bench/: fake servers, synthetic audio, a throwaway
PostgreSQL cluster, the local engines' test models, and cores wired to the fakes."""
