"""mlops: GitOps/MLOps CI/CD for ML components, KFP pipelines and KServe canaries."""

__version__ = "0.1.0"
