"""Compare runs side by side: `python report.py logs/train/multiruns/<time> [more dirs] [--out DIR]`."""

from fcn_lit.experiments.report import main

if __name__ == "__main__":
    main()
