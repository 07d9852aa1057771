"""photoedit: edit street photos by attribute with translators taught by a GAN."""
import re
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent
VERSION = re.search(r'__version__ = "([^"]+)"', (HERE / "pipeline" / "__init__.py").read_text()).group(1)

setup(
    name="photoedit",
    version=VERSION,
    description="Edit real street-view photos by attribute (sunny, night, ...) with feed-forward "
    "translators taught by a StyleGAN2 latent-space edit.",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["gan", "gan.*", "pipeline", "pipeline.*", "translators", "translators.*", "configs"]),
    package_data={"configs": ["*.yaml"], "translators": ["models/*/*.json", "models/*/*.safetensors"],
                  "pipeline": ["serve/static/*"]},
    include_package_data=True,
    install_requires=[
        "torch>=2.9,<2.15",
        "torchvision>=0.24,<0.30",
        "numpy>=1.24,<3",
        "scikit-learn>=1.3,<2",
        # headless: the same OpenCV as opencv-python, and the one albumentations pulls in;
        # two cv2 wheels side by side break each other.
        "opencv-python-headless>=4.8,<5",
        "albumentations>=1.4,<3",
        "pillow>=10,<13",
        "safetensors>=0.4,<1",
        "tqdm>=4.60,<5",
        "PyYAML>=6,<7",
        "matplotlib>=3.7,<4",
    ],
    extras_require={
        # CI runs the ONNX and web-app tests (the browser test drives Debian's chromium); Ray's skip.
        "test": ["pytest>=7,<10", "onnx>=1.16,<2", "onnxruntime>=1.18,<2",
                 "fastapi>=0.110,<1", "uvicorn>=0.29,<1", "playwright>=1.40,<2"],
        "onnx": ["onnx>=1.16,<2", "onnxruntime>=1.18,<2"],  # photoedit export, --backend onnxruntime
        "ray": ["ray[data]>=2.40,<3"],  # photoedit ray-edit
        "tensorboard": ["tensorboard>=2.14,<3"],  # train_gan.tensorboard / train_translator.tensorboard: true
        "serve": ["fastapi>=0.110,<1", "uvicorn>=0.29,<1", "playwright>=1.40,<2"],  # playwright: browser test only
    },
    entry_points={"console_scripts": ["photoedit=pipeline.cli:main"]},
)
