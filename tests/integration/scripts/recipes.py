"""The "With your framework" recipes (docs/frameworks.md), each training a tiny model for a step on CPU.

    python recipes.py FRAMEWORK WAY

FRAMEWORK is ``sklearn``, ``lightning`` or ``transformers``; WAY is ``implicit`` (the caller
sets ``MLFLOW_RUN_CONTEXT_PROVIDER=sysmetrics``), ``explicit`` (the recipe's one line without
the variable) or ``trap`` (the mistake the page warns about). Nothing is downloaded: the data
are random tensors and the models are built in code. The tracking URI and experiment come from
``MLFLOW_TRACKING_URI`` and ``MLFLOW_EXPERIMENT_NAME``. Prints, as JSON, every run of the
experiment: its metric names and whether it carries the system tags.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile

import mlflow


def sklearn(way: str) -> None:
    import numpy as np
    from sklearn.linear_model import LinearRegression

    x, y = np.random.default_rng(0).random((20, 3)), np.arange(20.0)
    mlflow.sklearn.autolog(log_models=False)
    if way == "explicit":
        from mlflow_sysmetrics import sysmetrics_run

        with sysmetrics_run():  # autologging logs into the active run
            LinearRegression().fit(x, y)
    else:
        LinearRegression().fit(x, y)  # autologging starts a run of its own


def lightning(way: str) -> None:
    import lightning as L
    import torch
    from lightning.pytorch.loggers import MLFlowLogger

    class Tiny(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.layer = torch.nn.Linear(4, 1)

        def training_step(self, batch: list[torch.Tensor], batch_idx: int) -> torch.Tensor:
            x, y = batch
            loss = torch.nn.functional.mse_loss(self.layer(x), y)
            self.log("train_loss", loss)
            return loss

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return torch.optim.SGD(self.parameters(), lr=0.1)

    data = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(torch.rand(8, 4), torch.rand(8, 1)), batch_size=4
    )

    def fit(logger: MLFlowLogger) -> None:
        trainer = L.Trainer(
            max_steps=1,
            logger=logger,
            log_every_n_steps=1,
            accelerator="cpu",
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
        )
        trainer.fit(Tiny(), data)

    uri, experiment = os.environ["MLFLOW_TRACKING_URI"], os.environ["MLFLOW_EXPERIMENT_NAME"]
    if way == "implicit":
        fit(MLFlowLogger(experiment_name=experiment, tracking_uri=uri))
        return
    from mlflow_sysmetrics import sysmetrics_run

    with sysmetrics_run() as run:
        if way == "explicit":  # the logger writes into the tagged run
            fit(MLFlowLogger(experiment_name=experiment, tracking_uri=uri, run_id=run.info.run_id))
        else:  # the trap: the logger makes a run of its own
            fit(MLFlowLogger(experiment_name=experiment, tracking_uri=uri))


def transformers(way: str) -> None:
    import torch
    from transformers import BertConfig, BertForSequenceClassification, Trainer, TrainingArguments

    config = BertConfig(
        vocab_size=16,
        hidden_size=8,
        num_hidden_layers=1,
        num_attention_heads=1,
        intermediate_size=8,
        max_position_embeddings=8,
        num_labels=2,
    )
    model = BertForSequenceClassification(config)
    generator = torch.Generator().manual_seed(0)
    data = [
        {"input_ids": torch.randint(0, 16, (6,), generator=generator), "labels": torch.tensor(i % 2)}
        for i in range(4)
    ]
    with tempfile.TemporaryDirectory() as output:
        arguments = TrainingArguments(
            output_dir=output,
            max_steps=1,
            per_device_train_batch_size=2,
            logging_steps=1,
            report_to=["mlflow"],
            save_strategy="no",
            use_cpu=True,
            disable_tqdm=True,
        )
        trainer = Trainer(model=model, args=arguments, train_dataset=data)
        if way == "explicit":
            from mlflow_sysmetrics import sysmetrics_run

            with sysmetrics_run():  # the Trainer's MLflow callback logs into the active run
                trainer.train()
        else:
            trainer.train()


def main() -> None:
    framework, way = sys.argv[1], sys.argv[2]
    {"sklearn": sklearn, "lightning": lightning, "transformers": transformers}[framework](way)
    while mlflow.active_run() is not None:
        mlflow.end_run()
    client = mlflow.MlflowClient()
    experiment = client.get_experiment_by_name(os.environ["MLFLOW_EXPERIMENT_NAME"])
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id])
    print(
        json.dumps(
            [{"metrics": sorted(run.data.metrics), "tagged": "sys.cpu" in run.data.tags} for run in runs]
        )
    )


if __name__ == "__main__":
    main()
