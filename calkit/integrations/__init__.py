"""Adapters for the frameworks users train and evaluate with (top floor of calkit).

One module per framework; nothing else in calkit imports them, and each imports its
framework only when it is itself imported:

* :mod:`calkit.integrations.torchmetrics`: ``torchmetrics.Metric`` subclasses on
  fixed-size, float64, ``"sum"``-reduced bin tables (``pip install torchmetrics``).
* :mod:`calkit.integrations.lightning`: PyTorch Lightning callbacks, AdaFocal gamma
  updates and calibration logging (``pip install 'calkit[lightning]'``).
* :mod:`calkit.integrations.transformers`: ``compute_metrics``, AdaFocal for the
  Hugging Face ``Trainer`` and multiple-choice confidences of causal LMs
  (``pip install 'calkit[transformers]'``).
* :mod:`calkit.integrations.spark`: fixed-size states over PySpark DataFrames
  (``pip install 'calkit[spark]'``).

Dask lives in :mod:`calkit.chunked` (``accumulate_dask``, ``accumulate_dask_dataframe``).
"""
