"""Search across meetings: keyword (the database's full-text index), semantic
(passage embeddings in a vector store) and hybrid (both, fused by rank).

Every entry point takes a *scope*, the queryset of meetings the caller may
see; nothing here decides who may see what, and no result leaves the scope.
"""
