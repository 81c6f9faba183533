module example.com/breakwater-quickstart

go 1.24

require breakwater.example/go v0.0.0

// Inside the repository the module comes from its source; outside it, from the dist
// layout (see bindings/go/README.md).
replace breakwater.example/go => ../../../bindings/go
