"""The peers benchmark (`python -m bench.peers`): this site, Label Studio and Potato on the same
closed loop; see bench/peers/__main__.py."""
