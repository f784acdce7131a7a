module libmemberlist.local/memberlist

go 1.19
