"""Account A, the post-only maker.

`python main_A.py --market BTC --quantity 0.0002 --depth 1 --config config.yaml`

Exit codes: 0 after SIGTERM/SIGINT (orderly stop), 2 for a configuration problem (the message names the key),
1 for anything unexpected. Everything else lives in `hedge_strategy.maker` and `hedge_strategy.runtime`.
"""

from hedge_strategy.process import main_entry

if __name__ == "__main__":
    main_entry("a", "hedge_strategy.maker:run_maker")  # imported once the config passed
