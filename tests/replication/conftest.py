import os
import sys

# the harness of the black-box suite (segtest: Server, Api, spec checks; hostile_util: Load)
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
sys.path.insert(0, os.path.dirname(__file__))
