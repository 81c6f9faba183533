module breakwater.example/go

go 1.24
