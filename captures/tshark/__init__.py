"""tshark and dumpcap: the only place that starts them or imports pyshark (apart from the lab, which
records with dumpcap inside its network namespaces, and the standalone ``captures/real/extract.py``).

* ``args``: every tshark/dumpcap command line; ``process``: the child processes and byte-moving threads;
* ``parser``: ``-T fields`` text -> PacketBatch; ``source``: the PacketSource (replay, chunks, live rotation);
* ``chunking`` / ``rotation``: a file / dumpcap's stream cut into per-tshark pieces; ``preflight``: checks
  before anything starts; ``dissect``: one frame's full tree (pyshark) for the detail view; ``table``: a
  whole capture as lines of fields for the lab's offline labelling; ``malloc``.
"""
