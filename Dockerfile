# syntax=docker/dockerfile:1
# The serving image of one model release: `tabml serve` with the release's package baked in.
#
#   tabml release build --tag tabml-model@v1.2.3      # dist/tabml-model-v1.2.3.tar.gz + .sha256
#   make image VERSION=v1.2.3                          # podman (or docker) build of this file
#
# Why baked in, not mounted: the image is then the one immutable artefact of a release. What
# was verified at build is what runs, a rollback is the previous image, and the cluster needs
# no volume or credentials to fetch models. The tarball's checksum and every file's manifest
# entry are verified at build, and the manifest again at every start.
#
# BASE is pinned by digest for GitHub (release.yml builds with this default). Machines with no
# image registry build a local base once: deploy/podman/setup (docs/deploy.md).
ARG BASE=docker.io/library/python:3.11-slim-bookworm@sha256:2e32f7d302adc1c37428355c1e646897c0c53f4fd60b6a551245fb90ee129f91

# checkov:skip=CKV_DOCKER_7: the base is the BASE build argument, pinned by digest above
# checkov:skip=CKV_DOCKER_2: the OCI image format has no HEALTHCHECK; Kubernetes probes /health and /ready (deploy/k8s)
# --- uv, verified: what both images are built with ------------------------------------------
FROM ${BASE} AS uv
ARG UV_VERSION=0.13.8
ENV UV_PROJECT_ENVIRONMENT=/opt/tabml \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=python3 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
    NML_DISABLE_USAGE_LOGGING=1 \
    ITERATIVE_DO_NOT_TRACK=1
# the system's certificate authorities (above), for pip and uv alike.
# uv by hash (--require-hashes): its wheels for x86_64 and aarch64 on PyPI. A new UV_VERSION
# needs its hashes here too, or the build fails: nothing unverified runs in a release build
RUN python3 -m venv /opt/uv \
 && printf 'uv==%s %s %s\n' "${UV_VERSION}" \
      --hash=sha256:e18a57b8b352eb7c8feb317b9f6f533c8f0ad9673fd6cf34bbe3cf1a9f6a8984 \
      --hash=sha256:0b3e8b1a4f5e405e31e2ff33de8af4744831e9f7338539671efbd8c3c94e791d \
      > /tmp/uv-requirements.txt \
 && /opt/uv/bin/pip install --no-cache-dir --require-hashes -r /tmp/uv-requirements.txt

# --- the serving image's build -----------------------------------------------------------------
FROM uv AS build
# strip (below), and LightGBM's OpenMP runtime for the import check. Not pinned to a Debian
# version: the base is pinned by digest, and bookworm's repository keeps only a package's
# current security release, so an exact pin would break the build at its next update
# hadolint ignore=DL3008
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends binutils libgomp1 >/dev/null
WORKDIR /src
# the serving set only: uv.lock's versions of the project's own dependencies, without the
# dependency groups (dev, and the pipeline's DVC, NannyML, Dask, scikit-learn, matplotlib)
# (README.md comes later: an edit to it must not rebuild the libraries' layer)
COPY pyproject.toml uv.lock ./
RUN --mount=type=cache,target=/root/.cache/uv \
    /opt/uv/bin/uv sync --frozen --no-default-groups --no-install-project
COPY README.md ./
COPY src/ src/
RUN --mount=type=cache,target=/root/.cache/uv \
    /opt/uv/bin/uv sync --frozen --no-default-groups --no-editable
# what serving never loads: test suites, C headers and Cython sources, pyarrow's Flight and
# remote-filesystem libraries but S3's ('tabml logs ship' copies the log to an object store;
# pyarrow imports each only on demand), SciPy beyond the sparse
# matrices LightGBM imports (with its second copy of OpenBLAS), and the debug symbols of the
# libraries (strip; not the wheels' vendored .libs, which it would break); then bytecode for what is left, so that a start on a read-only filesystem
# compiles nothing. The import check below fails the build if a library comes to need more.
# (`cd`, not WORKDIR: the folder's name has the Python version in it, which WORKDIR cannot glob)
# hadolint ignore=DL3003
RUN cd /opt/tabml/lib/python3*/site-packages \
 && find . -depth -type d \( -name tests -o -name __pycache__ \) -exec rm -rf {} + \
 && rm -rf pyarrow/include pyarrow/src pyarrow/libarrow_flight* pyarrow/_flight* \
      pyarrow/_gcsfs* pyarrow/_azurefs* pyarrow/_hdfs* \
 && (cd scipy && rm -rf cluster constants datasets differentiate fft fftpack integrate interpolate \
      io linalg misc ndimage odr optimize signal spatial special stats sparse/linalg sparse/csgraph) \
 && rm -rf scipy.libs \
 && find . \( -name '*.pyx' -o -name '*.pxd' -o -name '*.pxi' -o -name '*.h' -o -name '*.cpp' \) -delete \
 && find . -name '*.so*' -type f -not -path '*.libs/*' -exec strip --strip-unneeded {} + \
 && /opt/tabml/bin/python -m compileall -q -j 0 . \
 && /opt/tabml/bin/python -c "import lightgbm, scipy.sparse, pyarrow.parquet, pyarrow.dataset, pyarrow._s3fs, pandas, tabml.service.server, tabml.learning.predict, tabml.service.logship" \
 && du -sm /opt/tabml
# the release: checksum, then manifest, then unpacked (safely) into /opt/model
ARG RELEASE
RUN test -n "${RELEASE}" || { echo "build with --build-arg RELEASE=dist/<artifact>-<version>.tar.gz" >&2; exit 2; }
COPY ${RELEASE} ${RELEASE}.sha256 /release/
RUN /opt/tabml/bin/tabml package verify "/release/$(basename "${RELEASE}")" --extract-to /opt/model

# --- the pipeline image: what the Dask scheduler, the workers and the `dvc repro` job run ----
#   make pipeline-image        (podman or docker; deploy/k8s/dask uses it, docs/scale.md)
# The whole pipeline set from uv.lock (DVC, NannyML, Dask, LightGBM, scikit-learn), no dev
# tools, and git for the job's checkout. It carries no model and no data: the job checks the
# project out and pulls its data from the DVC remote. Built with `--target pipeline`; the
# default target stays the serving image below.
FROM uv AS pipeline
# git (the job's checkout) and LightGBM's OpenMP runtime. Not pinned to a Debian version: the
# base is pinned by digest, and bookworm's repository keeps only a package's current release
# hadolint ignore=DL3008
RUN apt-get update -qq \
 && apt-get install -y -qq --no-install-recommends git libgomp1 ca-certificates >/dev/null \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/apt /var/log/dpkg.log
WORKDIR /src
COPY pyproject.toml uv.lock ./
# the libraries, compiled once (this layer is rebuilt only when pyproject.toml or uv.lock
# changes, not when README.md or src/ do)
RUN --mount=type=cache,target=/root/.cache/uv \
    /opt/uv/bin/uv sync --frozen --no-default-groups --group pipeline --no-install-project \
 && /opt/tabml/bin/python -m compileall -q -j 0 /opt/tabml/lib
COPY README.md ./
COPY src/ src/
RUN --mount=type=cache,target=/root/.cache/uv \
    /opt/uv/bin/uv sync --frozen --no-default-groups --group pipeline --no-editable \
 && /opt/tabml/bin/python -m compileall -q /opt/tabml/lib/python3*/site-packages/tabml \
 && /opt/tabml/bin/python -c "import dask.dataframe, distributed, lightgbm, dvc, nannyml, tabml.compute.distributed, tabml.cli"
WORKDIR /work
ENV PATH=/opt/tabml/bin:${PATH} \
    HOME=/tmp \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    NML_DISABLE_USAGE_LOGGING=1 \
    ITERATIVE_DO_NOT_TRACK=1 \
    OMP_WAIT_POLICY=PASSIVE
USER 10001:10001
# the scheduler, a worker or the job say what to run (deploy/k8s/dask)
CMD ["tabml", "--help"]

# --- the serving image (the default target) ---------------------------------------------------
FROM ${BASE}
ARG MODEL_NAME=tabml-model
ARG MODEL_VERSION=unknown
ARG GIT_COMMIT=unknown
ARG SOURCE=https://github.com/OWNER/REPO
LABEL org.opencontainers.image.title="${MODEL_NAME}" \
      org.opencontainers.image.description="tabml model service: ${MODEL_NAME} ${MODEL_VERSION}" \
      org.opencontainers.image.version="${MODEL_VERSION}" \
      org.opencontainers.image.revision="${GIT_COMMIT}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      ai.tabml.model.name="${MODEL_NAME}" \
      ai.tabml.model.version="${MODEL_VERSION}"
# LightGBM's OpenMP runtime, the one system library serving needs beyond the base (not pinned
# to a Debian version: see the build stage)
# hadolint ignore=DL3008
RUN apt-get update -qq \
 && apt-get install -y -qq --no-install-recommends libgomp1 >/dev/null \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/apt /var/log/dpkg.log
COPY --from=build /opt/tabml /opt/tabml
COPY --from=build /opt/model /opt/model
# the one place the service writes: the prediction log (predictions/) and the audit log
# (audit/); mount a volume there
RUN mkdir -p /var/log/tabml && chown 10001:10001 /var/log/tabml
VOLUME ["/var/log/tabml"]
ENV PATH=/opt/tabml/bin:${PATH} \
    HOME=/tmp \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    NML_DISABLE_USAGE_LOGGING=1 \
    ITERATIVE_DO_NOT_TRACK=1
USER 10001:10001
EXPOSE 8000
STOPSIGNAL SIGTERM
ENTRYPOINT ["tabml", "serve", "--package", "/opt/model"]
CMD ["--host", "0.0.0.0", "--port", "8000", "--log-dir", "/var/log/tabml/predictions", \
     "--audit-log", "/var/log/tabml/audit/"]
