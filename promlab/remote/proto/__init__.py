"""Generated protobuf modules of the remote-write 1.0/2.0 and remote-read messages.

The schemas are promlab's own ``.proto`` files beside this module, written from the
specifications; regenerate with ``scripts/gen_proto.sh``.
"""
