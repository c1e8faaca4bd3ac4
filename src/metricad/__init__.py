"""metricad: ResNet18 + AdaCos metric learning, t-SNE and measured GradCAM for MVTec AD."""

__version__ = "0.1.0"
