# The gateway image: multi-stage, non-root. vLLM runs in its own image (see deploy/compose).
#   docker build -t tiergate .
#   docker run -p 8080:8080 -v $PWD/deploy/examples:/config tiergate serve --config /config/two-tier.yaml
FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
RUN python -m venv /opt/tiergate
# The CPU build of torch (for the MiniLM router) comes from PyTorch's own index outside this repo's
# build machine; constraints.txt pins every version we tested.
COPY pyproject.toml README.md constraints.txt ./
COPY gateway ./gateway
COPY router ./router
COPY policies ./policies
RUN /opt/tiergate/bin/pip install --extra-index-url https://download.pytorch.org/whl/cpu \
        -c constraints.txt .
# Convert the router's encoder to OpenVINO once, here: the gateway then starts without torch.
RUN HF_HUB_OFFLINE=1 TIERGATE_OPENVINO_CACHE=/opt/tiergate/openvino \
        /opt/tiergate/bin/python -c "from router.encoder import load_encoder; load_encoder()"

FROM python:3.11-slim
RUN useradd --system --uid 10001 --home-dir /home/tiergate --create-home tiergate
COPY --from=build /opt/tiergate /opt/tiergate
COPY deploy/examples /etc/tiergate/examples
ENV PATH=/opt/tiergate/bin:$PATH \
    LITELLM_LOCAL_MODEL_COST_MAP=True \
    HF_HUB_OFFLINE=1 \
    TIERGATE_HOST=0.0.0.0 \
    TIERGATE_PORT=8080 \
    TIERGATE_LOG_DIR=/home/tiergate/logs \
    TIERGATE_OPENVINO_CACHE=/opt/tiergate/openvino
USER tiergate
WORKDIR /home/tiergate
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s \
    CMD python -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:8080/health', timeout=2)" || exit 1
ENTRYPOINT ["tiergate"]
CMD ["serve", "--config", "/etc/tiergate/examples/two-tier.yaml"]
