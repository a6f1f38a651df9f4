-- keys: users, names
for i = 1, #ARGV do
  if not name_holder(users, names, ARGV[i], '') then return i end
end
return 0
