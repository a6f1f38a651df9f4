-- keys: users, names
for i = 1, #ARGV, 2 do hold_name(users, names, ARGV[i + 1], ARGV[i]) end
return 0
