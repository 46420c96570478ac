"""Dense text embeddings: an ``Embedder`` protocol, the offline MiniLM model shipped in a
package, OpenAI embeddings when configured, and a cache wrapper."""
