"""Prometheus's remote protocols: remote write 1.0/2.0 and remote read wire formats.

- :mod:`promlab.remote.proto`: generated protobuf modules of promlab's own ``.proto`` files;
- :mod:`promlab.remote.chunks`: XOR chunk encoder and vectorised decoder;
- :mod:`promlab.remote.codec`: snappy, streamed frames, write requests decoded to columns;
- :mod:`promlab.remote.client`: a remote-read client (used by ``Session.import_from``).

The HTTP endpoints are in :mod:`promlab.api.remote`; this package sits below the API and the
Session in the import layers and depends only on ``model`` and ``errors``.
"""
