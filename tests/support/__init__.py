"""What the tests share: doubles (`doubles`), events and indexed data (`events`), keys and secrets
(`tokens`), and waiting on processes and conditions (`processes`).

Where a helper is needed beyond the tests, it lives in the code that needs it, and the tests
import it from there: tokens are minted by `api.devtoken.mint_token` (also `make run` and the
benchmarks), and the project's console scripts are started and stopped by
`deploy.local.processes` (also `make run`'s supervisor, the local services and the benchmarks,
none of which may depend on `tests/`). Nothing here ships in the wheel.
"""
