"""The C++ backend (`target="cpp"`): one C++17 translation unit per program, built into a shared
library and loaded with ctypes. `emit.py` generates the source (`CppUnit`, see `unit.py`)."""
