"""The contract suites of batchcast's ports, for every backend, batchcast's own and outside ones.

Each port has one suite, a class of pytest tests that asks for fixtures and
never builds its backend itself. A backend's test module supplies the
fixtures and inherits the suite; the class's tests then run against it:

    import pytest
    from batchcast.testing.warehouses import WarehouseContract

    class TestMyWarehouse(WarehouseContract):
        @pytest.fixture
        def warehouse(self, tmp_path):          # a fresh, empty warehouse per test
            with open_warehouse(f"mywh:///{tmp_path}/db") as wh:
                yield wh

- ``batchcast.testing.warehouses.WarehouseContract``: the fixture ``warehouse``,
  an open ``Warehouse`` with no table ``preds`` in it.
- ``batchcast.testing.store.StoreContract``: the fixture ``store``, an empty
  ``ArtifactStore`` (a fresh bucket or folder per test).
- ``batchcast.testing.executors.ExecutorContract``: the fixture ``executor``,
  the name the executor is registered under (registered for the test); override
  ``build`` if the executor runs a package of the repository (an image), and
  define ``check_interpreter``. The suite brings ``churn_repo`` and
  ``adopted`` (the example command-contract repository and its service folder);
  a test module or conftest that defines them supplies its own.

Real services run in the suites: a fixture that starts a server (an emulator, a
database) makes the suite prove the backend against it. Add
``pytest.register_assert_rewrite("batchcast.testing")`` to your conftest.py,
before anything imports these modules, for pytest's detailed assertion messages.
Importing ``batchcast`` never imports this package (it needs pytest).
"""
