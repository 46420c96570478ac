"""Test doubles shipped with NomosX, for its own tests and for anyone embedding it.

``nomosx.testing.fake_llm``
    A loopback HTTP/1.1 server that speaks the OpenAI chat-completions, Anthropic
    messages and Gemini generateContent wire formats (plain and streamed), so the
    official SDKs can be pointed at it by base URL, and that can be scripted request by
    request to fail: error statuses, reset connections, streams cut short, malformed
    bodies, hangs. It never touches the network beyond 127.0.0.1.
"""
