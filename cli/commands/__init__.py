"""The subcommands of ``iotwatch``: each module has ``main(argv) -> exit code`` and its argparse parser,
and calls UI-free functions of captures/ and detector/."""

SUBCOMMANDS = {
    "doctor": ("iotwatch.commands.doctor", "check tshark/dumpcap and capture permission per interface"),
    "simulate": ("iotwatch.commands.simulate", "write synthetic labelled IoT captures (pcapng + labels CSV)"),
    "lab": ("iotwatch.commands.lab", "record real attack tools in isolated network namespaces (root)"),
    "train": ("iotwatch.commands.train", "train a model bundle from labelled captures or a CSV"),
    "model": ("iotwatch.commands.model", "inspect a model bundle (iotwatch model show [FILE])"),
    "completion": ("iotwatch.commands.completion", "print a shell completion script (bash, zsh, tcsh)"),
}
