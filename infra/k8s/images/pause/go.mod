module ms2m/pause

go 1.24
