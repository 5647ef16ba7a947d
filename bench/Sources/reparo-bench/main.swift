import ReparoCore
print("reparo-bench: see bench/README.md")
