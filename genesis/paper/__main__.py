"""``python -m genesis.paper``: the paper exchange command."""

from genesis.paper.command import main

main()
