module example.com/breakwater-quickstart

go 1.22
