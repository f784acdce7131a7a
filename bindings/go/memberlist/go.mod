module github.com/libmemberlist/libmemberlist/bindings/go/memberlist

go 1.19
