"""Account B, the hedger: `python main_B.py --market BTC --config config.yaml`.

Exit codes: 0 after SIGTERM/SIGINT (orderly stop), 2 for a configuration problem (the message names the key),
1 for anything unexpected. Everything else lives in `hedge_strategy.hedger` and `hedge_strategy.runtime`.
"""

from hedge_strategy.process import main_entry

if __name__ == "__main__":
    main_entry("b", "hedge_strategy.hedger:run_hedger")  # imported once the config passed
